#!/usr/bin/env bash
# What evicap.detect needs from the distribution:
#   g++ and the Python headers: pip builds the pdqhash package (PDQ image hashes) from source; PyPI has no wheel.
#   ffmpeg: video frames sampled at one per second for PDQ hashes of videos. Without it videos still get MD5 and
#   SHA-256, and media-hashes.json says why they have no PDQ.
set -u
python=${1:-python3}
pkgs=()
command -v g++ >/dev/null || pkgs+=(g++)
"$python" -c 'import os, sysconfig, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  || pkgs+=(python3-dev)
command -v ffmpeg >/dev/null || pkgs+=(ffmpeg)
[ ${#pkgs[@]} -eq 0 ] && exit 0
echo "installing: ${pkgs[*]}"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}"
