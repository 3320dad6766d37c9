"""The `hsmnode` command (click). Every listing has --json."""
