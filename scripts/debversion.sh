#!/bin/sh
# debversion.sh prints the Debian package version of the git tree in the
# current directory (make deb uses it). Versions rise with every commit,
# as dpkg --compare-versions orders them:
#   on tag vX.Y.Z                  X.Y.Z
#   N commits after tag vX.Y.Z     X.Y.Z+git.N.HASH
#   no vX tag in the history       0~git.N.HASH (N: commits in the history)
#   uncommitted changes            any of these then .dirty
# A tag's "-" becomes "~" (v1.0.0-rc1 is 1.0.0~rc1, before 1.0.0).
set -eu

dirty=""
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	dirty=".dirty"
fi
hash=$(git rev-parse --short=12 HEAD)

if desc=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
	# vX.Y.Z-N-gHASH; the tag itself may hold "-".
	rest=${desc%-g*}
	n=${rest##*-}
	tag=${rest%-*}
	upstream=$(printf '%s' "${tag#v}" | tr - '~')
	case $upstream in
	[0-9]*) ;;
	*) echo "debversion.sh: tag $tag does not start with v and a digit" >&2; exit 1 ;;
	esac
	case $upstream in
	*[!0-9A-Za-z.+~]*) echo "debversion.sh: tag $tag holds a character a Debian version cannot" >&2; exit 1 ;;
	esac
	if [ "$n" = 0 ]; then
		echo "$upstream$dirty"
	else
		echo "$upstream+git.$n.$hash$dirty"
	fi
else
	echo "0~git.$(git rev-list --count HEAD).$hash$dirty"
fi
