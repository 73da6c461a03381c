// SPDX-License-Identifier: MIT
// IN and OUT: in-kernel devices on the PIO bus, else an exit to userspace.
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

internal sealed partial class X86Emulator
{
    /// <summary>
    /// IN/OUT (imm8 or DX port; 1, 2 or 4 bytes). OUT commits and exits with the data at kvm_run.io.data_offset. IN
    /// exits first and completes when KVM_RUN is called again with the data userspace wrote there.
    /// </summary>
    private void PortIo(in Instruction i)
    {
        bool output = i.Mnemonic == Mnemonic.Out;
        int portOp = output ? 0 : 1;
        Register value = output ? i.GetOpRegister(1) : i.Op0Register;
        ushort port = (ushort)(i.GetOpKind(portOp) == OpKind.Register ? ReadReg(Register.DX) : i.GetImmediate(portOp));
        int size = value.GetSize();
        if (output)
        {
            ulong v = ReadReg(value);
            // x86.c emulator_pio_in_out → kernel_pio → kvm_io_bus_write(KVM_PIO_BUS): an ioeventfd or an in-kernel
            // device (PIC, PIT …) takes the OUT, no exit.
            if (_kvm.IoBus.Write(KvmMain.KvmBus.Pio, _vcpu, port, size, v)) return;
            var data = _run.SetIoExit(output: true, size, port);
            for (int b = 0; b < size; b++) data[b] = (byte)(v >> (8 * b));
            _exit = StepOutcome.ExitToUser;
            return;
        }
        // kernel_pio → kvm_io_bus_read(KVM_PIO_BUS): an in-kernel device answers the IN, no exit.
        Span<byte> fromDevice = stackalloc byte[size];
        if (_kvm.IoBus.Read(KvmMain.KvmBus.Pio, _vcpu, port, fromDevice))
        {
            ulong dv = 0;
            for (int b = 0; b < size; b++) dv |= (ulong)fromDevice[b] << (8 * b);
            WriteReg(value, dv);
            return;
        }
        if (_pending is { IsMmio: false } p && p.Length == size && _completionData is byte[] d)
        {
            ulong v = 0;
            for (int b = 0; b < size; b++) v |= (ulong)d[b] << (8 * b);
            WriteReg(value, v);
            _completionData = null;
            return;
        }
        throw new PioInStop(port, size);
    }
}
