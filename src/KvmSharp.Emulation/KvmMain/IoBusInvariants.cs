// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Fs;

namespace KvmSharp.Emulation.KvmMain;

/// <summary>
/// What virt/kvm/eventfd.c keeps true of kvm->ioeventfds (checked by <see cref="EmulatorInvariants"/>): no two
/// registrations collide (ioeventfd_check_collision runs before every kvm_io_bus_register_dev), every length is one
/// kvm_assign_ioeventfd accepts and none has a datamatch with length 0, every held eventfd context is alive (the
/// registration owns a reference), and every fast-MMIO entry is the length-0 twin of an MMIO one.
/// </summary>
internal static class IoBusInvariants
{
    public static void Check(Kvm vm, List<string> errors)
    {
        var all = vm.IoBus.IoEventFds;
        for (int i = 0; i < all.Count; i++)
        {
            var p = all[i];
            string what = $"VM type {vm.Type}: ioeventfd {p.Bus} 0x{p.Addr:X} len {p.Length}";
            if (p.Length is not (0 or 1 or 2 or 4 or 8)) errors.Add($"{what} has a length kvm_assign_ioeventfd refuses");
            if (p.Length == 0 && !p.Wildcard) errors.Add($"{what} has a datamatch with length 0");
            if (p.Ctx.Refs <= 0) errors.Add($"{what} holds a freed eventfd context");
            for (int j = i + 1; j < all.Count; j++)
            {
                if (p.CollidesWith(all[j])) errors.Add($"{what} collides with {all[j].Bus} 0x{all[j].Addr:X} len {all[j].Length}");
            }
            if (p.Bus == KvmBus.FastMmio &&
                (p.Length != 0 || !all.Any(m => m.Bus == KvmBus.Mmio && m.Addr == p.Addr && m.Length == 0 && ReferenceEquals(m.Ctx, p.Ctx))))
                errors.Add($"{what} on the fast MMIO bus has no length-0 MMIO twin");
        }
        if (vm.Destroyed && all.Count > 0) errors.Add($"VM type {vm.Type} is destroyed but keeps {all.Count} ioeventfds");
    }

    /// <summary>An open eventfd's context is alive (the file holds a reference).</summary>
    public static void CheckEventFd(int fd, EventFdFile file, List<string> errors)
    {
        if (file.Ctx.Refs <= 0) errors.Add($"eventfd {fd} has a freed context");
    }
}
