"""Security: credential encryption, password hashing, who may see what."""
