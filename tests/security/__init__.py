"""The adversarial corpus (DESIGN.md sections 6 and 9): every way a config can try to make a
write pass as a read, leak a secret, or send a credential elsewhere, run against real servers.
Each case asserts the server's state afterwards, not only an exit code.

One module per area (test_sql_*.py, test_http_*.py, test_redis_*.py, test_secrets_*.py, ...);
each area's throwaway servers live in its own `*_servers.py` helper module.
"""
