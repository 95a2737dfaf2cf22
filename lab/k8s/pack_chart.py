"""Pack a chart directory into a .tgz the same way every time (fixed times, owners and order), so its SHA-256 can be
pinned like a real chart's: python3 pack_chart.py CHART_DIR OUT.tgz."""

import gzip
import io
import os
import sys
import tarfile


def pack(chart_dir, out):
    name = os.path.basename(os.path.normpath(chart_dir))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for file_name in sorted(os.listdir(chart_dir)):
            with open(os.path.join(chart_dir, file_name), "rb") as handle:
                data = handle.read()
            info = tarfile.TarInfo("%s/%s" % (name, file_name))
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    with open(out, "wb") as handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as zipped:
        zipped.write(raw.getvalue())


if __name__ == "__main__":
    pack(sys.argv[1], sys.argv[2])
