"""The browser test page and the test-only app compositions that serve it."""
