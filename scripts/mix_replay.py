#!/usr/bin/env python3
"""Offline replay of LSTM / context-model mixers on an examples/mix_dump.rs dump.

Measurement only, never on a coding path: it re-implements the n-gram estimators in f64 and
mixes them with the dumped LSTM probability of each actual symbol (a linear mix needs nothing
else); bits per byte include the tokenizer's dictionary, not the 100-odd header bytes.

    cargo run --release --example mix_dump -- /work/shared/corpus/calgary/book1 fast /tmp/b.bin
    python3 scripts/mix_replay.py /tmp/b.bin est="'ad'" kn=True K=3 D="(0.4,0.6,0.8,0.9)" confmode=3

est='wb' (the default) is the old Witten-Bell order-2 model with its count levels; est='ad'
kn=True is src/model/ngram.rs, confmode=3 the mixer levels of src/model/mix.rs. match=True adds
the token match model, nway / multi / three / mkn the other mixers and estimators tried (see the
docs of src/model/mix.rs for what each gave).
"""
import struct, sys, math


def load(path):
    raw = open(path, 'rb').read()
    n, B, V, nbytes, dictb = struct.unpack_from('<5I', raw, 0)
    recs = list(struct.iter_unpack('<IHHfffHHf', raw[20:]))
    return n, B, V, nbytes, dictb, recs


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


class Ctx:
    __slots__ = ('c', 'n', 'u', 'n1', 'n2')
    def __init__(self):
        self.c = {}; self.n = 0; self.u = 0; self.n1 = 0; self.n2 = 0

def ctxmodel(path, K=2, est='wb', D=(0.7, 0.7, 0.7, 0.7, 0.7), kn=False, lr=0.02, confmode=0, base=0, kmin=0, three=False, lr3=0.02, match=False, nway=0, multi=0, mkn=False, MD=((0.4,0.4,0.4),(0.6,0.6,0.6),(0.8,0.8,0.8),(0.9,0.9,0.9)), minlen=3, mlr=0.02, mctx=0):
    ptr = {}; mlen = {}; mtab = {}; phi = {}
    n, B, V, nbytes, dictb, recs = load(path)
    L = (n + B - 1) // B
    sym = [0] * n
    for r in recs:
        sym[r[0]] = r[1]
    ptr = [-1] * B; mlen = [0] * B
    tabs = [dict() for _ in range(K + 1)]
    bits_ctx = 0.0
    bits_mix = 0.0
    theta = {}
    i = 0
    nrec = len(recs)
    def hist(idx, s, k):
        st = s * L
        return tuple(sym[j] if j >= st else 0 for j in range(idx - k, idx))
    while i < nrec:
        t = recs[i][0] % L
        j = i
        while j < nrec and recs[j][0] % L == t:
            j += 1
        step = recs[i:j]
        for (idx, x, conf, a, c, nm, na, ca, cm) in step:
            s = idx // L
            p = a if base else 1.0 / V
            chain = []
            lastn = 0; lastu = 0; lastk = -1
            for k in range(kmin, K + 1):
                cx = tabs[k].get(hist(idx, s, k))
                if cx is None or cx.n == 0:
                    continue
                cnt = cx.c.get(x, 0)
                if est == 'wb':
                    p = (cnt + cx.u * p) / (cx.n + cx.u)
                elif mkn:
                    d1, d2, d3 = MD[k]
                    dc = 0.0 if cnt == 0 else d1 if cnt == 1 else d2 if cnt == 2 else d3
                    gamma = d1 * cx.n1 + d2 * cx.n2 + d3 * (cx.u - cx.n1 - cx.n2)
                    p = (cnt - dc + gamma * p) / cx.n
                else:
                    d = D[k]
                    p = (max(cnt - d, 0.0) + d * cx.u * p) / cx.n
                lastn = cx.n; lastu = cx.u; lastk = k
                chain.append(p)
            bits_ctx -= math.log2(p)
            x2 = 0
            if confmode == 10:
                k3 = tabs[min(2,K)].get(hist(idx, s, min(2,K)))
                x2 = min(k3.n.bit_length(), 5) if k3 else 0
            nb = 0 if nm < 0.15 else 1 if nm < 0.4 else 2 if nm < 0.7 else 3
            eb = min(int(8 * lastu / max(lastn, 1)), 7)
            if confmode == 0:
                lev = conf
            elif confmode == 1:
                lev = min(lastn.bit_length(), 7)
            elif confmode == 2:
                lev = (lastk, min(lastn.bit_length(), 7))
            elif confmode == 3:
                lev = (lastk, eb)
            elif confmode == 4:
                lev = (lastk, min(lastn.bit_length(), 7), nb)
            elif confmode == 5:
                lev = (lastk, eb, nb)
            elif confmode == 6:
                lev = (conf, nb)
            elif confmode == 8:
                lev = (lastk, eb, sym[idx-1] if idx > s*L else 0)
            elif confmode == 9:
                lev = (sym[idx-1] if idx > s*L else 0,)
            elif confmode == 10:
                lev = (lastk, eb, x2)
            elif confmode == 7:
                lev = (lastk, min(lastn.bit_length(), 7), eb // 2, nb)
            if three:
                ws = theta.get(lev) or [0.0, 0.0, 0.0]
                theta[lev] = ws
                m = max(ws); e = [math.exp(v - m) for v in ws]; z = sum(e); w3 = [v / z for v in e]
                comps = (a, p, c)
                pm = sum(wi * ci for wi, ci in zip(w3, comps))
                bits_mix -= math.log2(pm)
                for k3 in range(3):
                    ws[k3] += lr3 * w3[k3] * (comps[k3] - pm) / pm
                continue
            if nway:
                while len(chain) < K + 1: chain.insert(0, 1.0 / V)
                comps = [a] + chain[-nway:]
                key = (lastk, eb)
                ws = theta.get(key)
                if ws is None:
                    ws = [0.0] * len(comps); ws[0] = 1.0; ws[-1] = 1.0; theta[key] = ws
                mx = max(ws); e = [math.exp(v - mx) for v in ws]; z = sum(e); wn = [v / z for v in e]
                pm = sum(wi * ci for wi, ci in zip(wn, comps))
                bits_mix -= math.log2(pm)
                for q in range(len(comps)):
                    ws[q] += lr3 * wn[q] * (comps[q] - pm) / pm
                continue
            if multi:
                nb2 = min(int(nm * 8), 7)
                keys = [('a', lastk, eb)]
                if multi & 1: keys.append(('b', nb2, lastk))
                if multi & 2: keys.append(('c', sym[idx-1] if idx > s*L else 0))
                if multi & 4: keys.append(('d', min(lastn.bit_length(), 10), lastk))
                if multi & 8: keys.append(('e', na == ca, nb2))
                th = sum(theta.get(kk, 0.0) for kk in keys)
                w = sig(th)
                pm = w * (a - p) + p
                bits_mix -= math.log2(pm)
                g = lr * (a - p) * w * (1 - w) / pm
                for kk in keys:
                    theta[kk] = max(-8, min(8, theta.get(kk, 0.0) + g))
                continue
            th = theta.get(lev, 0.0)
            w = sig(th)
            pm = w * (a - p) + p
            pfin = pm
            if match:
                if mlen[s] == 0 and t >= minlen:
                    q = mtab.get(tuple(sym[idx - minlen:idx]))
                    if q is not None:
                        l = 0
                        while l < 32 and idx - 1 - l >= s * L and q - 1 - l >= 0 and sym[q - 1 - l] == sym[idx - 1 - l]:
                            l += 1
                        if l >= minlen:
                            ptr[s] = q; mlen[s] = l
                if mlen[s] > 0:
                    pred = sym[ptr[s]]
                    lb = min(mlen[s], 15)
                    key2 = (lb, na == pred) if mctx == 1 else (lb, na == pred, lastk) if mctx == 2 else lb
                    f = phi.get(key2, -2.0)
                    lam = sig(f)
                    dd = 1.0 if x == pred else 0.0
                    pfin = (1 - lam) * pm + lam * dd
                    phi[key2] = max(-8.0, min(8.0, f + mlr * (dd - pm) * lam * (1 - lam) / pfin))
            bits_mix -= math.log2(pfin)
            theta[lev] = max(-8, min(8, th + lr * (a - p) * w * (1 - w) / pm))
        for (idx, x, *_r) in step:
            s = idx // L
            if match:
                if mlen[s] > 0:
                    if sym[ptr[s]] == x and ptr[s] + 1 < n:
                        mlen[s] += 1; ptr[s] += 1
                    else:
                        mlen[s] = 0
                if t >= minlen:
                    mtab[tuple(sym[idx - minlen:idx])] = idx
            newpair = True
            for k in range(K, -1, -1):
                key = hist(idx, s, k)
                cx = tabs[k].get(key)
                if cx is None:
                    cx = Ctx(); tabs[k][key] = cx
                if kn and k < K and not newpair:
                    break  # KN: lower orders count only novel continuations
                cnt = cx.c.get(x, 0)
                if cnt == 0:
                    cx.u += 1; cx.n1 += 1
                else:
                    newpair = False
                    if cnt == 1: cx.n1 -= 1; cx.n2 += 1
                    elif cnt == 2: cx.n2 -= 1
                cx.c[x] = cnt + 1
                cx.n += 1
        i = j
    d = dictb * 8
    return bits_ctx / nbytes, (bits_mix + d) / nbytes

if __name__ == '__main__':
    path = sys.argv[1]
    args = {}
    for kv in sys.argv[2:]:
        k, v = kv.split('=')
        args[k] = eval(v)
    print(path, args, 'ctx %.4f mix %.4f' % ctxmodel(path, **args))
