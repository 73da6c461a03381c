#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs a VMM (argv[1:]) whose console is its stdin/stdout (QEMU's -serial stdio), relays what the guest prints,
and types `reset -s` at the first UEFI shell prompt, so a firmware that reached its shell powers the VM off.
Exits with the VMM's status. Standard library only."""
import os
import re
import subprocess
import sys

ANSI = re.compile(rb"\x1b\[[0-9;=?]*[A-Za-z]")

vmm = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
seen = b""
typed = False
while True:
    chunk = os.read(vmm.stdout.fileno(), 4096)
    if not chunk:
        break
    sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    # The prompt is drawn with cursor moves and colours between its characters: look at the text alone.
    seen = (seen + chunk)[-8192:]
    if not typed and b"Shell> " in ANSI.sub(b"", seen):
        vmm.stdin.write(b"reset -s\r")
        vmm.stdin.flush()
        typed = True
sys.exit(vmm.wait())
