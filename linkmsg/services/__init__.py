"""The service layer: every domain rule, as plain functions over ids and primitives.

Services never touch `request`, `session` or templates; they raise the errors of
`linkmsg.services.errors`, each carrying the sentence the member will read.
"""
