"""Membership's pages: the kit's renderer with membership's templates and words.

Every page extends templates/base.html (blocks `title` and `content`), which
extends the kit's layout. A logged-in page passes `csrf` (sessions.csrf_token),
which also turns on the navigation and the log-out button. Other modules bring
their own words with `texts=` (same keys in "nb" and "en"); they are laid over
the common ones from i18n.py.
"""

from __future__ import annotations

from pathlib import Path

from alumni_kit.http import SECURITY_HEADERS as SECURITY_HEADERS  # the kit's page policy, re-exported
from alumni_kit.pages import Pages
from alumni_kit.pages import language as language
from alumni_kit.pages import redirect as redirect
from membership.web.i18n import TEXT
from usn_schemas.vocabulary import Language as Language  # re-exported for this service

PAGES = Pages(Path(__file__).parent / "templates", TEXT)
page = PAGES.page
message = PAGES.message
