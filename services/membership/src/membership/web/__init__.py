"""Server-rendered pages: rendering, forms, sessions, link pages and the common words."""
