# Run by cpack (CPACK_PRE_BUILD_SCRIPTS) on the staged tree, after `cmake --install` put the
# project's files there and before the .deb is made of it: adds what only the package has and
# makes the rest as Debian policy wants it.
#
# Optional, from `cpack -D` (scripts/package.sh): CPACK_TG_CHANGELOG_DATE (RFC 5322, the
# commit's date) and CPACK_TG_CHANGES (one line for the changelog entry).

set(root ${CPACK_TEMPORARY_DIRECTORY})
set(prefix ${root}${CPACK_PACKAGING_INSTALL_PREFIX})
set(doc ${prefix}/${CPACK_TG_DOCDIR})
set(here ${CPACK_TG_SOURCE_DIR}/packaging/deb)
if(NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  # The units' ExecStart= and the docs' paths were configured for the build's prefix.
  message(FATAL_ERROR "stage.cmake: a Debian package needs a build configured with "
                      "-DCMAKE_INSTALL_PREFIX=/usr (scripts/package.sh does that)")
endif()
if(NOT EXISTS ${prefix}/sbin/taskgroupd)
  message(FATAL_ERROR "stage.cmake: no ${prefix}/sbin/taskgroupd: is the staging root not ${root}?")
endif()

# The example config, every line a comment: a conffile (see ./conffiles).
file(COPY ${CPACK_TG_SOURCE_DIR}/systemd/taskgroupd.toml.example DESTINATION ${root}/etc/taskgroupd
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(RENAME ${root}/etc/taskgroupd/taskgroupd.toml.example ${root}/etc/taskgroupd/taskgroupd.toml)

file(COPY ${here}/copyright DESTINATION ${doc}
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# A native package's changelog.gz: one entry, for the version being packaged.
if(NOT CPACK_TG_CHANGELOG_DATE)
  string(TIMESTAMP CPACK_TG_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
endif()
if(NOT CPACK_TG_CHANGES)
  set(CPACK_TG_CHANGES "Built from the source tree.")
endif()
file(WRITE ${doc}/changelog "${CPACK_PACKAGE_NAME} (${CPACK_PACKAGE_VERSION}) unstable; urgency=medium

  * ${CPACK_TG_CHANGES}

 -- ${CPACK_DEBIAN_PACKAGE_MAINTAINER}  ${CPACK_TG_CHANGELOG_DATE}
")

# Policy 12.1 and 12.7: man pages and the changelog are compressed with gzip -9, and -n keeps
# the package reproducible (no name or time stamp inside).
file(GLOB_RECURSE man_pages ${prefix}/${CPACK_TG_MANDIR}/*)
list(FILTER man_pages INCLUDE REGEX "\\.[1-9]$")
foreach(f ${man_pages} ${doc}/changelog)
  execute_process(COMMAND gzip -9nf ${f} COMMAND_ERROR_IS_FATAL ANY)
endforeach()
