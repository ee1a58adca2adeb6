# impulse_embed_lua_scripts(OUTPUT script.lua...)
# Writes OUTPUT, a .cc defining impulse::coordinator::LuaScriptSource(name)
# that returns each script's text, keyed by its file name without ".lua".
function(impulse_embed_lua_scripts output)
  set(abs_scripts)
  foreach(script ${ARGN})
    list(APPEND abs_scripts ${CMAKE_CURRENT_SOURCE_DIR}/${script})
  endforeach()
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} "-DSCRIPTS=${abs_scripts}"
            -P ${PROJECT_SOURCE_DIR}/cmake/write_lua_scripts.cmake
    DEPENDS ${abs_scripts} ${PROJECT_SOURCE_DIR}/cmake/write_lua_scripts.cmake
    COMMENT "embedding Lua scripts"
    VERBATIM)
endfunction()
