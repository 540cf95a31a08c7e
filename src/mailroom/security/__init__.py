"""Security: sign-in and sessions, API tokens, password hashing, credential encryption.

Who may see which record or message is crm.access; this package knows no CRM data and sits
below mailroom.app, which loads the secret key through it.
"""
