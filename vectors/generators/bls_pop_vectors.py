#!/usr/bin/env python3
"""Generate BLS12-381 POP-ciphersuite vectors with an independent implementation.

Source of truth: py_ecc (the Ethereum Foundation's pure-Python BLS, PyPI package
`py_ecc`, G2ProofOfPossession), which implements
BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_ from draft-irtf-cfrg-bls-signature-05.

This script is run by hand (`pip install py_ecc==8.0.0`), never at test time:
its output, vectors/bls12381_pop_py_ecc.json, is committed and loaded by
core/tests/bls_vectors.rs. Regenerating the file is an explicit approval.
"""
import json
import sys

from py_ecc.bls import G2ProofOfPossession as bls
from py_ecc.fields import optimized_bls12_381_FQ as FQ
from py_ecc.optimized_bls12_381 import field_modulus as P

ikms = [bytes([i]) * 32 for i in range(1, 6)] + [
    bytes.fromhex("c00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"),
]
key_info = [b"", b"", b"shieldx", b"", b"", b"validator-5"]
msgs = [b"", b"abc", bytes(32), bytes(range(64)), b"shieldx commit vote", bytes([0xFF]) * 100]

cases = []


def add(op, inp, out):
    cases.append({"op": op, "input": inp, "output": out})


def h(b):
    return b.hex()


sks = [bls.KeyGen(ikm, info) for ikm, info in zip(ikms, key_info)]
pks = [bls.SkToPk(sk) for sk in sks]
for ikm, info, sk, pk in zip(ikms, key_info, sks, pks):
    add("keygen", {"ikm": h(ikm), "key_info": h(info)}, {"secret": sk.to_bytes(32, "big").hex(), "public": h(pk)})

sigs = {}
for i, sk in enumerate(sks):
    for j, m in enumerate(msgs):
        sig = bls.Sign(sk, m)
        sigs[(i, j)] = sig
        if (i + j) % 2 == 0 or i == 0:
            add("sign", {"secret": sk.to_bytes(32, "big").hex(), "message": h(m)}, h(sig))


def verify_case(pk, m, sig, label):
    out = bls.Verify(pk, m, sig)
    add("verify", {"public": h(pk), "message": h(m), "signature": h(sig), "case": label}, out)


verify_case(pks[0], msgs[1], sigs[(0, 1)], "valid")
verify_case(pks[2], msgs[0], sigs[(2, 0)], "valid empty message")
verify_case(pks[0], msgs[2], sigs[(0, 1)], "wrong message")
verify_case(pks[1], msgs[1], sigs[(0, 1)], "wrong public key")
verify_case(pks[0], msgs[1], sigs[(1, 1)], "signature by another key")

identity_g1 = bytes([0xC0]) + bytes(47)
identity_g2 = bytes([0xC0]) + bytes(95)
verify_case(identity_g1, msgs[1], identity_g2, "identity public key and signature")
verify_case(pks[0], msgs[1], identity_g2, "identity signature")


def non_subgroup_g1():
    """A point on E1: y^2 = x^3 + 4 that is not in the order-r subgroup."""
    x = 5
    while True:
        rhs = (x * x * x + 4) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            from py_ecc.optimized_bls12_381 import multiply, curve_order, is_inf
            pt = (FQ(x), FQ(y), FQ(1))
            if not is_inf(multiply(pt, curve_order)):
                flag = 0xA0 if y > P - y else 0x80
                raw = bytearray(x.to_bytes(48, "big"))
                raw[0] |= flag
                return bytes(raw)
        x += 1


bad_pk = non_subgroup_g1()
assert not bls.KeyValidate(bad_pk)
verify_case(bad_pk, msgs[1], sigs[(0, 1)], "public key outside the subgroup")
add("key_validate", {"public": h(bad_pk), "case": "outside the subgroup"}, False)
add("key_validate", {"public": h(identity_g1), "case": "identity"}, False)
add("key_validate", {"public": h(pks[0]), "case": "valid"}, True)

# Aggregate.
for idx in ([0], [0, 1], [0, 1, 2, 3, 4, 5]):
    s = [sigs[(i, 4)] for i in idx]
    add("aggregate", {"signatures": [h(x) for x in s]}, h(bls.Aggregate(s)))
mixed = [sigs[(0, 0)], sigs[(1, 1)], sigs[(2, 2)]]
add("aggregate", {"signatures": [h(x) for x in mixed]}, h(bls.Aggregate(mixed)))


def fav_case(pk_idx, m, sig, label, extra_pks=()):
    ps = [pks[i] for i in pk_idx] + list(extra_pks)
    out = bls.FastAggregateVerify(ps, m, sig)
    add("fast_aggregate_verify", {"publics": [h(p) for p in ps], "message": h(m), "signature": h(sig), "case": label}, out)


agg_all = bls.Aggregate([sigs[(i, 4)] for i in range(6)])
agg_three = bls.Aggregate([sigs[(i, 4)] for i in range(3)])
fav_case([0], msgs[4], sigs[(0, 4)], "valid single signer")
fav_case([0, 1, 2], msgs[4], agg_three, "valid three signers")
fav_case(list(range(6)), msgs[4], agg_all, "valid six signers")
fav_case([0, 1], msgs[4], agg_three, "missing a signer's key")
fav_case([0, 1, 2, 3], msgs[4], agg_three, "extra key")
fav_case([0, 1, 2], msgs[3], agg_three, "wrong message")
fav_case([], msgs[4], agg_three, "no public keys")
fav_case([0, 1, 2], msgs[4], agg_three, "identity key", extra_pks=[identity_g1])

# AggregateVerify: the POP scheme does not require distinct messages.
def av_case(pairs, sig, label):
    ps = [pks[i] for i, _ in pairs]
    ms = [msgs[j] for _, j in pairs]
    out = bls.AggregateVerify(ps, ms, sig)
    add("aggregate_verify", {"publics": [h(p) for p in ps], "messages": [h(m) for m in ms], "signature": h(sig), "case": label}, out)


pairs = [(0, 0), (1, 1), (2, 2), (3, 3)]
agg = bls.Aggregate([sigs[p] for p in pairs])
av_case(pairs, agg, "valid distinct messages")
same = [(0, 4), (1, 4), (2, 4)]
av_case(same, agg_three, "valid repeated message (POP scheme)")
av_case([(0, 1), (1, 0), (2, 2), (3, 3)], agg, "messages swapped")
av_case(pairs[:3], agg, "missing a pair")
av_case([], agg, "no pairs")

# Proof of possession.
for i in (0, 3):
    proof = bls.PopProve(sks[i])
    add("pop_prove", {"secret": sks[i].to_bytes(32, "big").hex()}, h(proof))
    add("pop_verify", {"public": h(pks[i]), "proof": h(proof), "case": "valid"}, bls.PopVerify(pks[i], proof))
    add("pop_verify", {"public": h(pks[i + 1]), "proof": h(proof), "case": "proof of another key"}, bls.PopVerify(pks[i + 1], proof))
# A message signature is not a proof of possession: the DSTs differ.
add("pop_verify", {"public": h(pks[0]), "proof": h(sigs[(0, 1)]), "case": "message signature as proof"}, bls.PopVerify(pks[0], sigs[(0, 1)]))

doc = {
    "source": "py_ecc 8.0.0, py_ecc.bls.G2ProofOfPossession (independent pure-Python implementation)",
    "ciphersuite": "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_",
    "specification": "draft-irtf-cfrg-bls-signature-05, sections 2.3 (KeyGen), 2.5-2.9, 3.3 (proof of possession)",
    "generator": "vectors/generators/bls_pop_vectors.py",
    "cases": cases,
}
json.dump(doc, sys.stdout, indent=1)
sys.stdout.write("\n")
