"""The company's drop address: an SMTP receiver that logs BCC'd and forwarded mail."""
