"""The minimum-turnout forecast: a daily forecast of an event's registrations at its
decision date, the alert when it falls short of the minimum, and the organiser's
decision (go ahead, or cancel). docs/events.md, "Minimum-turnout forecast"."""
