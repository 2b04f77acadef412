"""vfio-ccw passthrough in a fixture sysfs tree, as Linux 6.1 lays it out (host-paths.md, "Seen
on a real kernel: a vfio-ccw passthrough, stage by stage"), with `/run` (libvirt's status files)
and `/proc` stand-ins for the guests holding the mdevs."""

from __future__ import annotations

import os
import shutil


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _link(target: str, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)


def bind_vfio(tree: str, sch: str, override: str | None = None) -> None:
    """Binds subchannel `sch` to vfio_ccw: its ccw device child and `vpm` go, `driver` names
    vfio_ccw, `driver_override` reads `(null)` unless given, the mdev type directory appears
    with `available_instances` 1; `dev_busid` still names the device."""
    d = os.path.join(tree, "devices", "css0", sch)
    with open(os.path.join(d, "dev_busid")) as f:
        device = f.read().strip()
    if device != "none":
        shutil.rmtree(os.path.join(d, device), ignore_errors=True)
    if os.path.exists(os.path.join(d, "vpm")):
        os.remove(os.path.join(d, "vpm"))
    _link("../../../bus/css/drivers/vfio_ccw", os.path.join(d, "driver"))
    _write(os.path.join(d, "driver_override"), (override or "(null)") + "\n")
    types = os.path.join(d, "mdev_supported_types", "vfio_ccw-io")
    _write(os.path.join(types, "available_instances"), "1\n")
    _write(os.path.join(types, "name"), "I/O subchannel (Non-QDIO)\n")
    _write(os.path.join(types, "device_api"), "vfio-ccw\n")


def create_mdev(tree: str, sch: str, uuid: str, group: int | None) -> None:
    """mdevctl start -u UUID -p SCH -t vfio_ccw-io: the `<uuid>` directory under the subchannel,
    its `iommu_group`, the mdev bus link; `available_instances` 0."""
    d = os.path.join(tree, "devices", "css0", sch, uuid)
    _link("../../../../bus/mdev/drivers/vfio_ccw_mdev", os.path.join(d, "driver"))
    if group is not None:
        _link(f"../../../../kernel/iommu_groups/{group}", os.path.join(d, "iommu_group"))
    _link(f"../../../devices/css0/{sch}/{uuid}", os.path.join(tree, "bus", "mdev", "devices", uuid))
    _write(os.path.join(tree, "devices", "css0", sch, "mdev_supported_types", "vfio_ccw-io", "available_instances"),
           "0\n")


def remove_mdev_pending(tree: str, sch: str, uuid: str) -> None:
    """A removal of an mdev that a process holds, blocked in the kernel: gone from the mdev bus,
    the directory under the subchannel left with `iommu_group`."""
    os.remove(os.path.join(tree, "bus", "mdev", "devices", uuid))
    os.remove(os.path.join(tree, "devices", "css0", sch, uuid, "driver"))


def remove_mdev(tree: str, sch: str, uuid: str) -> None:
    """The removal completed."""
    if os.path.lexists(os.path.join(tree, "bus", "mdev", "devices", uuid)):
        os.remove(os.path.join(tree, "bus", "mdev", "devices", uuid))
    shutil.rmtree(os.path.join(tree, "devices", "css0", sch, uuid))
    _write(os.path.join(tree, "devices", "css0", sch, "mdev_supported_types", "vfio_ccw-io", "available_instances"),
           "1\n")


def qemu_process(proc: str, pid: int, guest: str, groups: list[int]) -> None:
    """PROC/<pid> of a QEMU started as libvirt starts it (`-name guest=NAME,debug-threads=on`),
    holding the container, each group and a device descriptor open."""
    args = ["/usr/bin/qemu-system-s390x", "-name", f"guest={guest},debug-threads=on", "-machine", "s390-ccw-virtio"]
    _write(os.path.join(proc, str(pid), "cmdline"), "\0".join(args) + "\0")
    _write(os.path.join(proc, str(pid), "comm"), "qemu-system-s39\n")
    files = ["/dev/vfio/vfio"] + [f"/dev/vfio/{g}" for g in groups] + ["anon_inode:[vfio-device]"] * len(groups)
    for n, target in enumerate(files):
        _link(target, os.path.join(proc, str(pid), "fd", str(n + 3)))


def libvirt_domain(run: str, name: str, pid: int, mdevs: list[str]) -> None:
    """RUN/libvirt/qemu/NAME.xml as libvirt writes a running domain's status."""
    hostdevs = "".join(
        f"""      <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-ccw'>
        <source>
          <address uuid='{uuid}'/>
        </source>
        <alias name='hostdev{n}'/>
        <address type='ccw' cssid='0xfe' ssid='0x0' devno='0x{n:04x}'/>
      </hostdev>
""" for n, uuid in enumerate(mdevs))
    _write(os.path.join(run, "libvirt", "qemu", f"{name}.xml"), f"""<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST.
-->
<domstatus state='running' reason='booted' pid='{pid}'>
  <monitor path='/var/lib/libvirt/qemu/domain-1-{name}/monitor.sock' type='unix'/>
  <domain type='kvm' id='1'>
    <name>{name}</name>
    <devices>
      <emulator>/usr/bin/qemu-system-s390x</emulator>
{hostdevs}    </devices>
  </domain>
</domstatus>
""")


def uuid_of(n: int) -> str:
    """A UUID of the form mdevctl takes, numbered."""
    return f"{n:08x}-0000-4000-8000-{n:012x}"
