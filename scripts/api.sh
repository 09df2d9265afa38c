#!/usr/bin/env bash
# The LEVELS API: a systemd unit that runs the current release bundle.
# User data unpacks a bundle into /opt/api/releases/<version>, points
# /opt/api/current at it and restarts api.service; the bundle's bin/start
# serves HTTP on $PORT. Safe to run twice.
set -euo pipefail
service=api

install -d -m 0755 "/opt/$service" "/opt/$service/releases"
cat >"/etc/systemd/system/$service.service" <<UNIT
[Unit]
Description=LEVELS $service
After=network-online.target
Wants=network-online.target
# No bundle until the first deployment: stay inactive instead of failing.
ConditionPathExists=/opt/$service/current/bin/start

[Service]
User=levels
Group=levels
Environment=PORT=8080
EnvironmentFile=-/etc/levels/$service.env
WorkingDirectory=/opt/$service/current
ExecStart=/opt/$service/current/bin/start
Restart=on-failure
RestartSec=5
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
StateDirectory=$service
LogsDirectory=$service

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable "$service.service"
