"""Mail to members about their registrations, as transactional mail requests to the mailer."""
