"""A member's profile, interests, volunteer offers and faculty networks."""
