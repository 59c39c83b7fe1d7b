"""Pages behind the links in mails: registration, and answering an offer (GET shows, POST acts)."""
