"""Use cases, one function each, called alike by the CLI, the dashboard and the API.

An interface (a Typer command, a page, an API route) parses its input, calls one function
here and presents the answer; a rule such as "nothing is saved that did not just log in"
or "the company's mailbox limit" lives here once. Functions take keyword-only arguments
with the `Session` and the `App` passed in, and keep transactions short: no transaction
is open while a server is being logged in to.
"""
