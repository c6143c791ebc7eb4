"""The notifier context: follows, reminder rules, work notifications, progress history."""
