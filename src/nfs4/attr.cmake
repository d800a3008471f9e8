# nfs4/ attribute layer: fattr4 encoding/decoding, VERIFY comparison, owner id mapping.
# Included from src/nfs4/CMakeLists.txt; paths are relative to this directory.
add_library(peernfs_nfs4_attr STATIC
  ${CMAKE_CURRENT_LIST_DIR}/nfs4_attr.c
  ${CMAKE_CURRENT_LIST_DIR}/nfs4_idmap.c
)
target_include_directories(peernfs_nfs4_attr PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(peernfs_nfs4_attr PUBLIC peernfs_fs Threads::Threads)
