"""The verifier service: the verify API for approval systems and the public web page.

`create_app(settings)` (verifier.service.app) builds everything; nothing runs at import.
"""
