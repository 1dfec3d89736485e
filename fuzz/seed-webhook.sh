#!/usr/bin/env bash
# Seed corpus for the `webhook` fuzz target: every real payload in tests/fixtures/payloads, prefixed
# with its event's byte (the target's EVENTS order) and a flags byte of 0 (correctly signed, with a
# delivery id). Writes fuzz/corpus/webhook/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
out=corpus/webhook
mkdir -p "$out"
n=0
for f in ../tests/fixtures/payloads/github/*/*.json ../tests/fixtures/payloads/derived/*.json ../tests/fixtures/payloads/*.json; do
  base=$(basename "$f")
  kind=$(basename "$(dirname "$f")")
  case "$kind" in github|derived|payloads) kind=${base%%-*} ;; esac
  case "$kind" in
    workflow_job) b='\x00' ;; check_run) b='\x01' ;; check_suite) b='\x02' ;; status) b='\x03' ;;
    issue_comment) b='\x06' ;;
    *) b='\x05' ;;
  esac
  { printf "$b"; printf '\x00'; cat "$f"; } > "$out/$(echo "$f" | tr '/.' '__')"
  n=$((n + 1))
done
echo "$n seeds in fuzz/$out"
