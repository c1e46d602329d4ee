"""The supervision service (限时督办): deadlines, reminders, supervision orders, assessment."""
