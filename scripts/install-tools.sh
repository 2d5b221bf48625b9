#!/usr/bin/env bash
# Stock tools used by docs/verify-without-evicap.md (and its test): openssl, jq, sha256sum (coreutils).
set -u
missing=()
for tool in openssl jq sha256sum; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
pkgs=()
for tool in "${missing[@]}"; do
  case "$tool" in sha256sum) pkgs+=(coreutils) ;; *) pkgs+=("$tool") ;; esac
done
$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}"
