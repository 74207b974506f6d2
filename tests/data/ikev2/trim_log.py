import re, sys
DROP = ("generated data for this payload", "generated data of this generator", "parsing payload from")
keep_dump = False
for line in sys.stdin:
    m = re.match(r"\S+ \d+\[(\w+)\] (<[^>]*> )?(.*)", line)
    if not m:
        continue
    sub, text = m.group(1), m.group(3)
    if re.match(r"\s+\d+: ", text):
        if keep_dump:
            sys.stdout.write(line)
        continue
    labelled = re.match(r"\S.* => \d+ bytes", text) is not None
    keep_dump = labelled and not text.startswith(DROP) and sub in ("IKE", "ENC", "CHD")
    if keep_dump or (sub in ("IKE", "CHD") and not text.startswith(("  ", "queueing", "activating", "reinitiating"))) \
            or re.search(r"(generating|parsed) \w+ (request|response) \d+ \[", text) \
            or text.startswith(("encrypted payload", "sending packet", "received packet")):
        sys.stdout.write(line)
