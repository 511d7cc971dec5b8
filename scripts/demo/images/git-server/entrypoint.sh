#!/bin/sh
# Seeds /srv/git (a volume) with battery-lib's demo history on first start, writes the push password
# file from the mounted Secret, and runs lighttpd in the foreground.
set -eu
[ -d /srv/git/battery-lib.git ] || cp -r /opt/git-server/seed/battery-lib.git /srv/git/
# Pushed repositories (e.g. the GitOps values) accept pushes once they exist; `git init --bare` of a new
# one happens through GIT_SERVER_CREATE (space-separated names), so no shell access is needed.
for name in ${GIT_SERVER_CREATE:-}; do
  if [ ! -d "/srv/git/$name.git" ]; then
    git init -q --bare -b main "/srv/git/$name.git"
    git -C "/srv/git/$name.git" config http.receivepack true
  fi
done
: >/tmp/htpasswd
if [ -r /etc/git-server/username ] && [ -r /etc/git-server/password ]; then
  printf '%s:%s\n' "$(cat /etc/git-server/username)" "$(openssl passwd -5 -stdin </etc/git-server/password)" >/tmp/htpasswd
fi
exec lighttpd -D -f /opt/git-server/lighttpd.conf
