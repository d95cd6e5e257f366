"""Hold MB megabytes of resident memory for SECONDS seconds, then print a line.

Used by the SLURM retry-on-memory test: SLURM's jobacct_gather/linux poller samples the
RSS every second, so the memory is touched page by page and held for a few seconds.
"""

import sys
import time

mb = int(sys.argv[1])
seconds = float(sys.argv[2])
buf = bytearray(mb * 1024 * 1024)
for i in range(0, len(buf), 4096):
    buf[i] = 1
print(f"holding {mb} MB for {seconds} s", flush=True)
time.sleep(seconds)
print("done", flush=True)
