"""Checks a witness's cosignature on a checkpoint, written from the C2SP specifications alone
(signed-note, tlog-checkpoint, tlog-cosignature v1) with the `cryptography` package's Ed25519:
a second implementation, so studyflow's cosignatures are held to the standard, not to
themselves.

usage: verify_cosignature.py VKEY NOTE_FILE
prints `cosigned <size> <time>` and exits 0, or says why not and exits 1.
"""

import base64
import hashlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def main(vkey: str, note: str) -> int:
    name, key_id_hex, key_b64 = vkey.strip().split("+", 2)
    key = base64.b64decode(key_b64)
    if len(key) != 33 or key[0] != 0x04:
        print("not a cosignature/v1 key")
        return 1
    public = key[1:]
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + public).digest()[:4]
    if key_id.hex() != key_id_hex:
        print("the key's id does not match")
        return 1
    body, _, signatures = note.partition("\n\n")
    body += "\n"
    size = int(body.split("\n")[1])
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            continue
        signer, _, blob = line[2:].partition(" ")
        blob = base64.b64decode(blob)
        if signer != name or blob[:4] != key_id or len(blob) != 4 + 8 + 64:
            continue
        time = int.from_bytes(blob[4:12], "big")
        message = f"cosignature/v1\ntime {time}\n{body}".encode()
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)
        except InvalidSignature:
            print("a cosignature line of the witness that does not verify")
            return 1
        print(f"cosigned {size} {time}")
        return 0
    print("no cosignature of the witness")
    return 1


if __name__ == "__main__":
    with open(sys.argv[2], encoding="utf-8") as f:
        sys.exit(main(sys.argv[1], f.read()))
