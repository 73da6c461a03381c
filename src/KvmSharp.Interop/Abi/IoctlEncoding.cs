// SPDX-License-Identifier: MIT
namespace KvmSharp.Abi;

/// <summary>
/// The generic ioctl number encoding from include/uapi/asm-generic/ioctl.h:
/// <c>_IOC(dir,type,nr,size) = dir&lt;&lt;30 | size&lt;&lt;16 | type&lt;&lt;8 | nr</c>.
/// </summary>
public static class IoctlEncoding
{
    public const uint _IOC_NONE = 0;
    public const uint _IOC_WRITE = 1;
    public const uint _IOC_READ = 2;

    public static uint _IOC(uint dir, uint type, uint nr, uint size)
    {
        // asm-generic/ioctl.h: 14 size bits, 8 type bits, 8 nr bits.
        if (size >= 1u << 14)
            throw new ArgumentOutOfRangeException(nameof(size), size, "ioctl argument size must fit in 14 bits");
        return (dir << 30) | (size << 16) | (type << 8) | nr;
    }

    public static uint _IO(uint type, uint nr) => _IOC(_IOC_NONE, type, nr, 0);
    public static uint _IOR(uint type, uint nr, uint size) => _IOC(_IOC_READ, type, nr, size);
    public static uint _IOW(uint type, uint nr, uint size) => _IOC(_IOC_WRITE, type, nr, size);
    public static uint _IOWR(uint type, uint nr, uint size) => _IOC(_IOC_READ | _IOC_WRITE, type, nr, size);

    public static uint _IOC_DIR(uint request) => request >> 30;
    public static uint _IOC_SIZE(uint request) => (request >> 16) & 0x3fff;
    public static uint _IOC_NR(uint request) => request & 0xff;
    public static uint _IOC_TYPE(uint request) => (request >> 8) & 0xff;
}
