"""Sending from the CRM: compose, queue, send through the user's SMTP, copy to Sent, log."""
