#!/usr/bin/python3
# An independent ESP implementation for the tests: scapy's SecurityAssociation (Debian
# python3-scapy) over python3-cryptography (OpenSSL). Run with Debian's /usr/bin/python3.
#
# Batch protocol, so one process serves a whole test: JSON requests on stdin, one per line; one
# JSON reply per request on stdout, in order. Keys arrive on stdin (never argv, which `ps` shows)
# and are never written back: replies and error texts carry no key material.
#
# Request fields (all ops):
#   op       "decrypt" | "encrypt"
#   spi      int
#   key      hex of key ‖ salt, Cilium's and scapy's rfc4106 layout (16/32-byte key, 4-byte salt)
#   icv      ICV bytes: 16 goes through scapy; 8 and 12 through cryptography's GCM with a
#            truncated tag, because scapy's AES-GCM insists on 16-byte tags
#   esn      bool; seq_hi: int, the high 32 bits that enter the AAD
#   mode     "tunnel" | "transport"
# decrypt:   packet  hex of the outer IPv4 packet carrying ESP
#   reply    {ok, inner (hex IPv4 packet), seq, iv (hex), nh, pad_ok, aligned, outer_ok, via}
#            pad_ok:  padding bytes are 1, 2, 3 … (checked here, scapy does not)
#            aligned: pad length and next header end on a 4-byte boundary (RFC 4303 §2.4)
#            outer_ok: outer IPv4 checksum and total length are right
# encrypt:   inner hex IPv4 packet; seq; iv (hex, 8 bytes);
#            outer {src, dst, ttl, tos, id, flags} for tunnel mode
#   reply    {ok, packet (hex of the IPv4 packet scapy built)}
# Any failure: {ok: false, error: "<exception class>: <message>"}.
import json
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from scapy.all import IP, raw
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation


def make_sa(req):
    key = bytes.fromhex(req["key"])
    tunnel = None
    if req["mode"] == "tunnel":
        o = req.get("outer") or {}
        tunnel = IP(src=o.get("src", "0.0.0.0"), dst=o.get("dst", "0.0.0.0"),
                    ttl=o.get("ttl", 64), tos=o.get("tos", 0), id=o.get("id", 0),
                    flags=o.get("flags", 0))
    return SecurityAssociation(ESP, spi=req["spi"], crypt_algo="AES-GCM", crypt_key=key,
                               crypt_icv_size=req.get("icv", 16), tunnel_header=tunnel,
                               esn_en=req.get("esn", False), esn=req.get("seq_hi", 0))


def gcm_decrypt(key_salt, iv, aad, ciphertext, tag):
    """AES-GCM with any tag length 8..16 (OpenSSL through cryptography's hazmat GCM mode)."""
    key, salt = key_salt[:-4], key_salt[-4:]
    d = Cipher(algorithms.AES(key), modes.GCM(salt + iv, tag, min_tag_length=len(tag))).decryptor()
    d.authenticate_additional_data(aad)
    return d.update(ciphertext) + d.finalize()


def decrypt(req):
    pkt = IP(bytes.fromhex(req["packet"]))
    outer_ok = True
    check = pkt.copy()
    del check.chksum
    outer_ok = IP(raw(check)).chksum == pkt.chksum and pkt.len == len(bytes.fromhex(req["packet"]))
    esp = pkt[ESP]
    body = bytes(esp.data)
    icv = req.get("icv", 16)
    iv, ct, tag = body[:8], body[8:len(body) - icv], body[len(body) - icv:]
    if req.get("esn"):
        aad = struct.pack("!LLL", esp.spi, req.get("seq_hi", 0), esp.seq)
    else:
        aad = struct.pack("!LL", esp.spi, esp.seq)
    scapy_inner = None
    if icv == 16:
        # scapy's own path first, end to end: SPI check, ICV, trailer, decapsulation. A forgery
        # must be rejected here, by scapy, before anything else looks at the packet.
        scapy_inner = raw(make_sa(req).decrypt(pkt))
    elif esp.spi != req["spi"]:
        raise TypeError("SPI mismatch")
    # The trailer, decrypted by OpenSSL directly (scapy does not check padding and cannot do
    # truncated tags): raises InvalidTag on any forgery.
    plain = gcm_decrypt(bytes.fromhex(req["key"]), iv, aad, ct, tag)
    padlen, nh = plain[-2], plain[-1]
    pad = plain[len(plain) - 2 - padlen:len(plain) - 2]
    pad_ok = padlen + 2 <= len(plain) and pad == bytes(range(1, padlen + 1))
    aligned = (8 + len(body) - icv) % 4 == 0
    payload = plain[:len(plain) - 2 - padlen]
    if req["mode"] == "tunnel":
        inner = payload
    else:
        hdr = IP(raw(pkt)[:pkt.ihl * 4])
        hdr.proto = nh
        hdr.len = len(hdr) + len(payload)
        del hdr.chksum
        inner = raw(hdr) + payload
    if scapy_inner is not None and scapy_inner != inner:
        raise ValueError("scapy and OpenSSL disagree on the decapsulated packet")
    via = "scapy" if scapy_inner is not None else "cryptography"
    return {"ok": True, "inner": inner.hex(), "seq": esp.seq, "iv": iv.hex(), "nh": nh,
            "pad_ok": pad_ok, "aligned": aligned, "outer_ok": outer_ok, "via": via}


def encrypt(req):
    sa = make_sa(req)
    out = sa.encrypt(IP(bytes.fromhex(req["inner"])), seq_num=req["seq"], iv=bytes.fromhex(req["iv"]),
                     esn_en=req.get("esn", False), esn=req.get("seq_hi", 0))
    return {"ok": True, "packet": raw(out).hex()}


def main():
    ops = {"decrypt": decrypt, "encrypt": encrypt}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = ops[req["op"]](req)
        except (IPSecIntegrityError, InvalidTag) as e:
            reply = {"ok": False, "error": "integrity: " + type(e).__name__}
        except Exception as e:  # noqa: BLE001 — every failure is a reply, never a crash mid-batch
            msg = str(e)
            if req.get("key") and req["key"].lower() in msg.lower():
                msg = "[message withheld: it contained key material]"
            reply = {"ok": False, "error": f"{type(e).__name__}: {msg}"}
        sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
