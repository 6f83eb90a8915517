/*
 * ctl_link.h - how a client finds the control socket of a nearfs mount.
 *
 * The root of every nearfs mount contains a symbolic link with the name
 * NEARFS_CTL_LINK.  Its target is the absolute path of the daemon's
 * control socket (see ctl.h), so readlink(2) of MOUNTPOINT/.nearfs-ctl
 * finds the daemon of a mount.  readdir does not list the link, and
 * unlink, rename and setattr of it fail with EPERM.  An origin entry
 * with this name in the root is hidden behind the link.
 */
#ifndef NEARFS_CTL_LINK_H
#define NEARFS_CTL_LINK_H

#define NEARFS_CTL_LINK ".nearfs-ctl"

#endif
