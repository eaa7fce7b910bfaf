"""QP Desktop: the technician's companion app (Qt)."""

# The reverse-DNS application id, used everywhere the desktop identifies the app: Qt's
# desktop file name (Wayland app id), the ``.desktop`` file and AppStream metainfo in
# ``resources/``, the autostart entry and the installed icon name.
APP_ID = "com.qpdesktop.QPDesktop"
# The program's name: Qt's application and organization name (hence the settings folder),
# the data and log folders, and the User-Agent.
APP_NAME = "qp-desktop"
