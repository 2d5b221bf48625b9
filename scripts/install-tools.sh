#!/usr/bin/env bash
# Stock tools used by docs/verify-without-evicap.md (and its test): openssl, jq, sha256sum (coreutils);
# by the report tests: pdftotext, pdfinfo, pdftoppm (poppler-utils); and a font with Arabic for the reports
# (fonts-noto-core: Noto Naskh/Sans Arabic), found with fc-list; unzip for the transfer-package test (docs/package.md).
set -u
missing=()
for tool in openssl jq sha256sum pdftotext unzip; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ! fc-list 2>/dev/null | grep -qi -e "Noto Naskh Arabic" -e "Noto Sans Arabic"; then missing+=(arabic-font); fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
pkgs=()
for tool in "${missing[@]}"; do
  case "$tool" in
    sha256sum) pkgs+=(coreutils) ;;
    pdftotext) pkgs+=(poppler-utils) ;;
    arabic-font) pkgs+=(fonts-noto-core fontconfig) ;;
    *) pkgs+=("$tool") ;;
  esac
done
$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}"
