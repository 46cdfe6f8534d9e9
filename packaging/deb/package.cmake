# The Debian package, built by CPack's DEB generator from exactly what `cmake --install` installs
# (scripts/package.sh configures the prefix /usr and runs cpack; docs/systemd.md, "Debian
# package"). Included from the top-level CMakeLists.txt; costs nothing unless cpack runs.
#
# At cpack time, stage.cmake adds to the staged tree what only the package has (the conffile
# /etc/taskgroupd/taskgroupd.toml, changelog.gz, copyright) and compresses the man pages;
# dpkg-shlibdeps then computes Depends: from the binaries' shared libraries.
#
# Why CPack rather than dpkg-buildpackage and a debian/ directory: the package holds by
# construction what `cmake --install` installs (man pages, completions, docs arrive without a
# packaging edit, where debian/*.install lists would have to follow every install() rule); it
# packages an existing build in seconds, so a test can package one build under several versions
# to test upgrades, where dpkg-buildpackage runs debian/rules' whole build each time; and it
# needs only dpkg-dev. The price: the maintainer scripts dh_installsystemd and
# dh_installsysusers would generate are written by hand here (after debhelper's snippets), and
# there is no source package (.dsc), which an upload to Debian itself would need.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME taskgroupd)
set(CPACK_PACKAGE_VENDOR "taskgroupd maintainers")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})  # /usr for a package (package.sh).
# Only the project's own install rules: no component split, one package.
set(CPACK_DEB_COMPONENT_INSTALL OFF)
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_GENERATOR "")
# Directories the staging install creates get 0755 whatever the umask (lintian:
# non-standard-dir-perm).
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

# taskgroupd_<version>_<arch>.deb. The version is the project's unless cpack -R gives one
# (package.sh: the project version plus the git commit count and hash).
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER
    "taskgroupd maintainers <maintainers@users.noreply.h-seed-8abaca56.example>")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "runs commands under limits, in groups that can be cancelled as one
taskgroupd is a daemon that queues, runs and supervises commands for the
users of a machine. Users submit commands with tgctl over a Unix socket; each
task runs as its submitter, in named groups with their own limits, and a group
can be waited on, paused or cancelled as one. State survives restarts and
crashes in an SQLite store.
.
This package runs the system daemon under systemd with socket activation:
members of the group taskgroupd may use it. It also has the units for a
per-user daemon.")
# Depends: from the libraries the binaries link (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/conffiles ${CMAKE_CURRENT_LIST_DIR}/postinst
    ${CMAKE_CURRENT_LIST_DIR}/prerm ${CMAKE_CURRENT_LIST_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/stage.cmake)
# Read by stage.cmake.
set(CPACK_TG_SOURCE_DIR ${PROJECT_SOURCE_DIR})
set(CPACK_TG_DOCDIR ${CMAKE_INSTALL_DOCDIR})
set(CPACK_TG_MANDIR ${CMAKE_INSTALL_MANDIR})

include(CPack)
