#!/bin/sh
# Everything a program does with tldw, with curl alone: ask for a summary,
# poll until it is ready, list the history, read the usage and the daily
# series, invite a member, start a checkout. Stops at the first answer that
# is not a success, printing the error envelope.
#
#   TLDW=http://127.0.0.1:3000 TLDW_ORG=acme TLDW_KEY=tldw_… \
#     sh docs/api-example.sh [youtube link] [invitee email]
#
# TLDW_KEY is an admin key from the organization's settings page (inviting
# and checkout need admin; the rest works with a member key).
set -eu
: "${TLDW:?set TLDW to the server, e.g. http://127.0.0.1:3000}"
: "${TLDW_ORG:?set TLDW_ORG to the organization slug}"
: "${TLDW_KEY:?set TLDW_KEY to an API key (tldw_…)}"
VIDEO="${1:-https://youtu.be/dQw4w9WgXcQ}"
INVITEE="${2:-new.colleague@example.com}"
ORG="$TLDW/api/v1/orgs/$TLDW_ORG"
BODY="$(mktemp)"
trap 'rm -f "$BODY"' EXIT

# call METHOD URL [JSON]: prints the answer and sets $status. A POST carries
# a fresh Idempotency-Key, so retrying that one request is always safe.
call() {
  if [ $# -ge 3 ]; then
    status=$(curl -sS -o "$BODY" -w '%{http_code}' -X "$1" "$2" \
      -H "Authorization: Bearer $TLDW_KEY" \
      -H 'Content-Type: application/json' \
      -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" \
      -d "$3")
  else
    status=$(curl -sS -o "$BODY" -w '%{http_code}' -X "$1" "$2" \
      -H "Authorization: Bearer $TLDW_KEY")
  fi
  printf '%s %s -> %s\n%s\n\n' "$1" "$2" "$status" "$(cat "$BODY")"
  case "$status" in
    2??) ;;
    *) exit 1 ;;
  esac
}

echo "== ask for a summary"
call POST "$ORG/summaries" "{\"url\": \"$VIDEO\"}"
video=$(sed -n 's/.*"video_id":"\([A-Za-z0-9_-]\{11\}\)".*/\1/p' "$BODY")

echo "== poll it until it is ready (202 means: still being made)"
while [ "$status" = 202 ]; do
  sleep 2
  call GET "$ORG/summaries/$video"
done

echo "== the history, newest first"
call GET "$ORG/summaries?limit=5"

echo "== this period's usage, and the last 7 days"
call GET "$ORG/usage"
call GET "$ORG/usage/daily?days=7"

echo "== invite a member"
call POST "$ORG/invitations" "{\"email\": \"$INVITEE\", \"role\": \"member\"}"

echo "== start a checkout for the Pro plan"
call POST "$ORG/billing/checkout" '{"plan": "pro"}'
