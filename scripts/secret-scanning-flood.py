#!/usr/bin/env python3
"""Issue 28, item 3's target: CONNECTIONS (default 1,024) connections at once each POST a 1 MiB
body to the secret-scanning endpoint without a valid signature: a third without the signature
headers, a third with a made-up identifier, a third with a published identifier and a
well-formed signature over another body (the case that passes every check before the body).
Prints the server's peak and final RSS (from /proc) and the statuses seen.

Usage: scripts/secret-scanning-flood.py keys FILE.json       (writes a key list, prints KEY_ID)
       scripts/secret-scanning-flood.py SERVER_PID http://127.0.0.1:PORT [CONNECTIONS]
The server must read its keys from that file (JT_GITHUB_SCANNING_KEYS=file:///…/FILE.json);
the second form signs with the private key kept beside it (FILE.json.pem, via KEYS_FILE)."""
import asyncio, base64, collections, json, os, sys, time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

if sys.argv[1] == "keys":
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with open(sys.argv[2], "w") as f:
        json.dump({"public_keys": [
            {"key_identifier": "flood-key", "key": public, "is_current": True}]}, f)
    with open(sys.argv[2] + ".pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    print("flood-key")
    sys.exit(0)

with open(os.environ["KEYS_FILE"] + ".pem", "rb") as f:
    SIGNING_KEY = serialization.load_pem_private_key(f.read(), None)
# A real signature, over another body: passes the header checks, fails the body's.
WRONG_SIGNATURE = base64.b64encode(SIGNING_KEY.sign(b"[]", ec.ECDSA(hashes.SHA256()))).decode()

PID, BASE = sys.argv[1], sys.argv[2]
CONNECTIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
HOST, PORT = BASE.removeprefix("http://").split(":")
BODY = b"[" + b" " * (1024 * 1024 - 2) + b"]"


def rss_mb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def one(i, statuses):
    headers = ["", "Github-Public-Key-Identifier: made-up\r\nGithub-Public-Key-Signature: AAAA\r\n",
               "Github-Public-Key-Identifier: flood-key\r\n"
               f"Github-Public-Key-Signature: {WRONG_SIGNATURE}\r\n"][i % 3]
    try:
        reader, writer = await asyncio.open_connection(HOST, int(PORT))
        writer.write((f"POST /api/v1/secret-scanning/github HTTP/1.1\r\nHost: x\r\n"
                      f"Content-Type: application/json\r\n{headers}"
                      f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n").encode())
        writer.write(BODY)
        try:
            await asyncio.wait_for(writer.drain(), 30)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        line = await asyncio.wait_for(reader.readline(), 30)
        statuses[line.split(b" ")[1].decode() if line else "closed"] += 1
        writer.close()
    except Exception as e:  # a reset after the answer is the server refusing the rest
        statuses[type(e).__name__] += 1


async def main():
    statuses = collections.Counter()
    start = rss_mb()
    peak = start
    tasks = [asyncio.create_task(one(i, statuses)) for i in range(CONNECTIONS)]
    while not all(t.done() for t in tasks):
        peak = max(peak, rss_mb())
        await asyncio.sleep(0.05)
    time.sleep(2)
    print(f"RSS before {start:.0f} MB, peak {peak:.0f} MB, 2 s after {rss_mb():.0f} MB; "
          f"answers: {dict(statuses)}")

asyncio.run(main())
