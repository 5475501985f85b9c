"""End-to-end tests (marked ``e2e``); a package so their module names cannot clash with
the unit tests' in tests/."""
