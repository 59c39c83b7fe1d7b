"""Sign-up (pre-alumni), applications, magic-link login and the e-mailed links."""
