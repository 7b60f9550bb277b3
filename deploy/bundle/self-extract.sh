#!/bin/sh
# A self-extracting Skupper installation bundle, made by "skupper system generate-bundle
# --type shell-script" (see docs/bundles.md). Run it as "sh NAME.sh [options]": it checks the
# payload below the marker line against its SHA-256, extracts it to a temporary directory and
# runs the installer in it with the options given ("sh NAME.sh -h" lists them).
set -eu

BUNDLE_NAME='@BUNDLE_NAME@'
PAYLOAD_LINE=@PAYLOAD_LINE@
PAYLOAD_SHA256='@PAYLOAD_SHA256@'

fail() { printf 'Error: %s\n' "$*" >&2; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum <"$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 <"$1" | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 <"$1" | sed 's/^.* //'
  else
    fail "none of sha256sum, shasum or openssl is installed, so the bundle cannot be checked before it is extracted; install one of them (coreutils has sha256sum)."
  fi
}

[ -f "$0" ] || fail "run the bundle from its file: sh $BUNDLE_NAME.sh [options]"
for tool in tail tar gzip mktemp; do
  command -v "$tool" >/dev/null 2>&1 || fail "\"$tool\" is not installed; the bundle needs it to extract itself."
done

work=$(mktemp -d "${TMPDIR:-/tmp}/skupper-bundle.XXXXXX") || fail "cannot make a temporary directory in ${TMPDIR:-/tmp}."
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tail -n +"$PAYLOAD_LINE" "$0" >"$work/payload.tar.gz"
[ "$(sha256_of "$work/payload.tar.gz")" = "$PAYLOAD_SHA256" ] \
  || fail "$0 is damaged: its payload does not match the SHA-256 it was made with. Copy or download the bundle again (nothing was installed)."
tar -xzf "$work/payload.tar.gz" -C "$work" || fail "the payload of $0 could not be extracted (is there space in ${TMPDIR:-/tmp}?)."
rm -f "$work/payload.tar.gz"
SKUPPER_BUNDLE_SELF="sh $0" sh "$work/$BUNDLE_NAME/install.sh" "$@"
exit 0
# shellcheck disable=SC2317 # the marker: the payload starts on the next line, never run
__SKUPPER_BUNDLE_PAYLOAD__
