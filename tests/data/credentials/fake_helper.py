"""Fake docker-credential-<name> helper for tests/test_credentials.py, driven by environment variables.

FAKE_HELPER_MODE[_<NAME>]: ok | token | notfound | fail | junk | leaky_fail | empty | hang
FAKE_HELPER_SECRET: the secret to hand out; FAKE_HELPER_LOG: file to append "<name> <stdin>" to;
FAKE_HELPER_SLEEP: seconds to wait before answering (widens race windows in the thread test).
"""

import json
import os
import sys
import time

name = os.path.basename(sys.argv[0]).replace("docker-credential-", "", 1)
server = sys.stdin.read()
if os.environ.get("FAKE_HELPER_LOG"):
    with open(os.environ["FAKE_HELPER_LOG"], "a") as log:
        log.write(f"{name} {' '.join(sys.argv[1:])} {server}\n")
time.sleep(float(os.environ.get("FAKE_HELPER_SLEEP", "0")))
mode = os.environ.get(f"FAKE_HELPER_MODE_{name.upper()}") or os.environ.get("FAKE_HELPER_MODE", "ok")
secret = os.environ.get("FAKE_HELPER_SECRET", f"{name}-s3cret")

if sys.argv[1:] != ["get"]:
    sys.exit("unexpected arguments")
if mode in ("ok", "token"):
    user = "<token>" if mode == "token" else f"{name}-user"
    print(json.dumps({"ServerURL": server, "Username": user, "Secret": secret}))
elif mode == "notfound":
    print("credentials not found in native keychain")
    sys.exit(1)
elif mode == "fail":
    print("error: keychain is locked", file=sys.stderr)
    sys.exit(3)
elif mode == "leaky_fail":
    print(json.dumps({"Username": "u", "Secret": secret}), file=sys.stderr)
    sys.exit(1)
elif mode == "junk":
    print(f'{{"Username": "u", "Secret": "{secret}"')  # truncated JSON that still holds the secret
elif mode == "empty":
    print(json.dumps({"ServerURL": server, "Username": "", "Secret": ""}))
elif mode == "hang":
    time.sleep(60)
