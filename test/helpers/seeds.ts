/** Text of the seed procedures that tests run as written (../shared/seeds/). */

/**
 * Seed 001's shell lines that build an AccessToken file from the status of AccessGrant
 * `grant-west`: `get` is the command that reads it (`kubectl`, or `skupper -n west` on a host),
 * `out` the file written.
 */
export function seed001TokenScript(get: string, out = "token.yaml"): string {
  return `URL="$(${get} get accessgrant grant-west -o template --template '{{ .status.url }}')"
CODE="$(${get} get accessgrant grant-west -o template --template '{{ .status.code }}')"
CA_RAW="$(${get} get accessgrant grant-west -o template --template '{{ .status.ca }}')"
cat > ${out} <<EOF
apiVersion: skupper.io/v2alpha1
kind: AccessToken
metadata:
  name: token-to-west
spec:
  code: "$(printf '%s' "$CODE")"
  ca: |-
$(printf '%s\\n' "$CA_RAW" | sed 's/^/    /')
  url: "$(printf '%s' "$URL")"
EOF`;
}
