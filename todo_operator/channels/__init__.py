"""Delivery channels: a reminder delivered exactly once (``delivery``), by e-mail over SMTP (``mail``)."""
