#!/usr/bin/env bash
# Common to every LEVELS server: the awscli that fetches release bundles
# (see the service module's user data) and the unprivileged app user.
set -euo pipefail

if ! command -v aws >/dev/null; then
  if command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q -y -o DPkg::Lock::Timeout=600 update
    # Ubuntu 24.04 dropped the awscli package; its snap is the supported way.
    apt-get -q -y -o DPkg::Lock::Timeout=600 install awscli || snap install aws-cli --classic
  else
    dnf -q -y install awscli-2
  fi
fi
aws --version

if ! id -u levels >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin levels
fi
install -d -m 0755 /etc/levels
