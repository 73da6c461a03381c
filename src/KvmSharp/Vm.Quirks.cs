// SPDX-License-Identifier: MIT
using System.Globalization;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

public sealed partial class Vm
{
    /// <summary>
    /// KVM_CHECK_EXTENSION(KVM_CAP_DISABLE_QUIRKS2): the quirks this VM may disable (<see cref="X86Quirks.None"/>
    /// where the kernel predates 5.19 or is not x86). Bits the SDK does not name stay visible.
    /// </summary>
    public X86Quirks DisableableQuirks => (X86Quirks)(ulong)Math.Max(0, CheckExtension(KvmCaps.KVM_CAP_DISABLE_QUIRKS2));

    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_DISABLE_QUIRKS2): turns <paramref name="quirks"/> off for the whole VM, vCPUs already
    /// created included (each quirk is looked up when it applies, e.g. LINT0 at the next APIC reset). Quirks disabled
    /// earlier stay disabled: there is no way back.
    /// </summary>
    /// <exception cref="KvmCapabilityException">EINVAL: the kernel has no KVM_CAP_DISABLE_QUIRKS2.</exception>
    /// <exception cref="KvmException">EINVAL: a bit outside <see cref="DisableableQuirks"/> (the message names them).</exception>
    public void DisableQuirks(X86Quirks quirks)
    {
        try
        {
            EnableCapability(KvmCaps.KVM_CAP_DISABLE_QUIRKS2, (ulong)quirks);
        }
        catch (KvmException e) when (e is not KvmCapabilityException && e.Errno == Errno.EINVAL)
        {
            var offered = DisableableQuirks;
            var unknown = quirks & ~offered;
            throw new KvmException(e.Operation, e.ErrnoValue, e.Request, string.Create(CultureInfo.InvariantCulture,
                $"{e.Message} — 0x{(ulong)unknown:X} ({unknown}) is not among the quirks this kernel can disable (0x{(ulong)offered:X}, {offered})"), e);
        }
    }
}
